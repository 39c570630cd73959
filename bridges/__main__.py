"""``python -m chatterbox_tray.bridges openai|wyoming``."""

import sys

from .cli import main

sys.exit(main())
