"""``python -m chatterbox_tray.bridges openai|wyoming``."""

import sys

from .serve import main

sys.exit(main())
