import sys

from luckystack.cli import main

sys.exit(main())
