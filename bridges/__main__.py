"""``python -m chatterbox_tray.bridges openai|wyoming|mcp``."""

import sys

from .serve import main

sys.exit(main())
