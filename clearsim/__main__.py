"""``python -m clearsim``: the same command line as the ``clearsim`` script."""

import sys

from clearsim.replay.cli import main

sys.exit(main())
