import sys

from voiceflow.cli import main

sys.exit(main())
