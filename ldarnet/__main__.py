"""``python -m ldarnet`` runs the command line."""

import sys

from ldarnet.cli import main

sys.exit(main())
