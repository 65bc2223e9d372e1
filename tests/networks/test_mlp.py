"""The MLP that DSP prunes: forward pass, hidden probes and output Jacobians against NumPy."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dspjax.networks import init_mlp, mlp_apply, output_jacobians, zero_probes
from dspjax.networks.mlp import orthogonal_kernel


def numpy_forward(params, x, act):
    hiddens, h = [], np.asarray(x, np.float64)
    for layer in params[:-1]:
        h = act(h @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64))
        hiddens.append(h)
    return h @ np.asarray(params[-1]["kernel"], np.float64) + np.asarray(params[-1]["bias"]), hiddens


@pytest.mark.parametrize("activation,act", [("tanh", np.tanh), ("relu", lambda z: np.maximum(z, 0))])
@pytest.mark.parametrize("sizes", [(3, 5, 2), (4, 8, 6, 3), (2, 3, 4, 5, 1)])
def test_forward_matches_numpy(sizes, activation, act):
    params = init_mlp(jax.random.PRNGKey(0), sizes)
    params = jax.tree.map(lambda p: p + 0.1, params)  # non-zero biases
    x = np.random.default_rng(0).normal(size=(7, sizes[0])).astype(np.float32)
    out, hiddens = mlp_apply(params, x, activation)
    ref_out, ref_hiddens = numpy_forward(params, x, act)
    chex.assert_shape(out, (7, sizes[-1]))
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    for h, r in zip(hiddens, ref_hiddens):
        np.testing.assert_allclose(h, r, rtol=1e-5, atol=1e-5)


def test_init_is_orthogonal_with_zero_biases():
    params = init_mlp(jax.random.PRNGKey(1), (8, 8, 4), hidden_scale=2.0, output_scale=0.5)
    w = np.asarray(params[0]["kernel"])
    np.testing.assert_allclose(w.T @ w, 4.0 * np.eye(8), atol=1e-4)
    w_out = np.asarray(params[1]["kernel"])
    np.testing.assert_allclose(w_out.T @ w_out, 0.25 * np.eye(4), atol=1e-5)
    assert all(np.all(np.asarray(layer["bias"]) == 0) for layer in params)


def test_probe_gradients_are_loss_gradients_wrt_hiddens():
    """∂L/∂probe equals ∂L/∂h, checked by finite differences on one hidden unit."""
    params = init_mlp(jax.random.PRNGKey(2), (3, 6, 5, 2))
    x = jax.random.normal(jax.random.PRNGKey(3), (4, 3))

    def loss(probes):
        return jnp.sum(mlp_apply(params, x, "tanh", probes)[0] ** 2)

    probes = zero_probes(params, (4,))
    grads = jax.grad(loss)(probes)
    chex.assert_trees_all_equal_shapes(grads, probes)
    eps = 1e-3
    for l in range(2):
        bump = [jnp.zeros_like(p) for p in probes]
        bump[l] = bump[l].at[1, 2].set(eps)
        up = loss(tuple(p + b for p, b in zip(probes, bump)))
        down = loss(tuple(p - b for p, b in zip(probes, bump)))
        np.testing.assert_allclose(grads[l][1, 2], (up - down) / (2 * eps), rtol=2e-2, atol=1e-3)


def test_output_jacobians_match_finite_differences():
    params = init_mlp(jax.random.PRNGKey(4), (3, 5, 4, 2))
    x = jax.random.normal(jax.random.PRNGKey(5), (2, 3))
    jacs = output_jacobians(params, x, "tanh")
    chex.assert_shape(jacs[0], (2, 2, 5))
    chex.assert_shape(jacs[1], (2, 2, 4))
    eps = 1e-3
    for l, width in enumerate((5, 4)):
        for j in range(width):
            probes = [jnp.zeros((2, w)) for w in (5, 4)]
            up = [p.copy() for p in probes]
            down = [p.copy() for p in probes]
            up[l] = up[l].at[:, j].set(eps)
            down[l] = down[l].at[:, j].set(-eps)
            fd = (mlp_apply(params, x, "tanh", tuple(up))[0]
                  - mlp_apply(params, x, "tanh", tuple(down))[0]) / (2 * eps)
            np.testing.assert_allclose(jacs[l][:, :, j], fd, rtol=2e-2, atol=1e-3)


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
