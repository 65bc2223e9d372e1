import sys

from dspjax.cli import main

sys.exit(main())
