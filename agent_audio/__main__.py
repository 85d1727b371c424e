"""``python -m agent_audio``: the demo's command line (:mod:`agent_audio.demo.cli`)."""

import sys

from agent_audio.demo.cli import main

if __name__ == "__main__":
    sys.exit(main())
