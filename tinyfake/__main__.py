import sys

from tinyfake.cli import main

sys.exit(main())
