"""Run ``python -m trionet``."""

import sys

from ._cli import main

sys.exit(main())
