"""``python -m flowml.cli``."""

import sys

from flowml.cli import main

sys.exit(main())
