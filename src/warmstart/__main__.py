"""`python -m warmstart ...` (and `accelerate launch -m warmstart ...`): the same as the `warmstart` command."""

import sys

from warmstart.cli import main

sys.exit(main())
