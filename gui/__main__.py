"""``python -m chatterbox_tray.gui``: the tray app."""

import sys

from .app import main

sys.exit(main())
