"""`python -m pipeline` is the `ideopipe` command."""

import sys

from .cli import main

sys.exit(main())
