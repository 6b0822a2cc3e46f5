"""``python -m rtc_ros.report BAG_DIR --out DIR``."""

import sys

from rtc_ros.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
