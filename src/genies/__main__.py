import sys

from genies.cli import main

sys.exit(main())
