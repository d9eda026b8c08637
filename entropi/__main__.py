import sys

from entropi.cli import main

sys.exit(main())
