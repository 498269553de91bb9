"""python3 -m greta_trace DIR: see reader.main."""
import sys

from .reader import main

sys.exit(main())
