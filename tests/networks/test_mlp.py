"""The Flax MLP the agents train: its forward pass is its declared chain's, against NumPy; its
initial kernels are orthogonal (without LAPACK)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dspjax.networks import MLP
from dspjax.networks.mlp import orthogonal_kernel
from dspjax.pruning import chain_layers


def numpy_forward(layers, x, act):
    h = np.asarray(x, np.float64)
    for layer in layers[:-1]:
        h = act(h @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64))
    return h @ np.asarray(layers[-1]["kernel"], np.float64) + np.asarray(layers[-1]["bias"], np.float64)


@pytest.mark.parametrize("activation,act", [("tanh", np.tanh), ("relu", lambda z: np.maximum(z, 0))])
@pytest.mark.parametrize("hidden,out", [((5,), 2), ((8, 6), 3), ((3, 4, 5), 1)])
def test_forward_is_the_declared_chain_in_numpy(hidden, out, activation, act):
    model = MLP(hidden, out, activation)
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    variables = model.init(jax.random.PRNGKey(0), x)
    variables = jax.tree.map(lambda p: p + 0.1, variables)  # non-zero biases
    layers = chain_layers(variables, model.chain())
    assert [layer["kernel"].shape[-1] for layer in layers] == [*hidden, out]
    np.testing.assert_allclose(model.apply(variables, x), numpy_forward(layers, x, act),
                               rtol=1e-5, atol=1e-5)


def test_chain_under_a_prefix_finds_the_same_layers():
    model = MLP((4,), 2)
    variables = model.init(jax.random.PRNGKey(1), np.zeros((1, 3), np.float32))
    inside = chain_layers({"actor": variables}, model.chain(("actor", "params")))
    for a, b in zip(inside, chain_layers(variables, model.chain())):
        np.testing.assert_array_equal(a["kernel"], b["kernel"])


def test_init_is_orthogonal_with_zero_biases():
    model = MLP((8,), 4, hidden_scale=2.0, output_scale=0.5)
    layers = chain_layers(model.init(jax.random.PRNGKey(1), np.zeros((1, 8), np.float32)),
                          model.chain())
    w = np.asarray(layers[0]["kernel"], np.float64)
    np.testing.assert_allclose(w.T @ w, 4.0 * np.eye(8), atol=1e-4)
    w_out = np.asarray(layers[1]["kernel"], np.float64)
    np.testing.assert_allclose(w_out.T @ w_out, 0.25 * np.eye(4), atol=1e-5)
    assert all(np.all(np.asarray(layer["bias"]) == 0) for layer in layers)


@pytest.mark.parametrize("shape", [(4, 256), (256, 256), (256, 2), (3, 5), (5, 3), (1, 1)])
def test_orthogonal_kernel_is_jax_orthogonal_initializer_without_lapack(shape):
    """Our Gram-Schmidt kernel is the Q factor JAX's initializer takes from LAPACK's QR.

    Tolerances follow the float32 error of a QR factorisation, not one machine's rounding. Both are
    backward stable: ``Q R = A + ΔA`` with ``‖ΔA‖ ≲ γ_n ‖A‖``, ``γ_n = n u`` (Higham, Accuracy and
    Stability, Thm 19.4), so ``Qᵀ A`` is upper triangular and ``Qᵀ Q = I`` to ``n u`` — checked
    against that bound. Two such factors of the same ``A`` differ by ``‖ΔQ‖ ≤ √2 κ(A) ‖ΔA‖/‖A‖``
    (Sun's QR perturbation bound); with the typical backward error ``√n u`` this is the tolerance of
    the element-wise comparison. ``κ(A)`` is large for square Gaussian matrices (~10³ at 256x256),
    which is why an absolute tolerance that held at 4x256 failed at 256x256 on another CPU.
    """
    key = jax.random.PRNGKey(11)
    gain, u = 2.0, float(np.finfo(np.float32).eps)
    ours = np.asarray(orthogonal_kernel(key, *shape, gain=gain), np.float64)
    rows, cols = max(shape), min(shape)
    q = (ours.T if shape[0] < shape[1] else ours) / gain  # (rows, cols), orthonormal columns
    a = np.asarray(jax.random.normal(key, (rows, cols), jnp.float32), np.float64)  # what both factor
    r = q.T @ a
    np.testing.assert_allclose(q.T @ q, np.eye(cols), rtol=0, atol=rows * u)
    assert np.abs(np.tril(r, -1)).max(initial=0.0) <= rows * u * np.linalg.norm(a, 2)
    assert np.all(np.diag(r) > 0)  # the sign convention that makes Q unique (JAX's too)

    reference = np.asarray(jax.nn.initializers.orthogonal(gain)(key, shape, jnp.float32), np.float64)
    forward_tol = gain * np.sqrt(2) * np.linalg.cond(a) * np.sqrt(rows) * u
    np.testing.assert_allclose(ours, reference, rtol=0, atol=forward_tol)
    hlo = jax.jit(lambda k: orthogonal_kernel(k, *shape)).lower(key).as_text()
    assert "lapack" not in hlo.lower() and "custom_call" not in hlo
