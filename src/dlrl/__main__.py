"""``python -m dlrl``: the same as the ``dlrl`` command."""

import sys

from dlrl.cli import main

sys.exit(main())
