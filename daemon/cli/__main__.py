"""`python -m hallwatch.daemon.cli`: the `hallwatch` command."""

import sys

from hallwatch.daemon.cli.main import main

sys.exit(main())
