"""An example external policy package for rtc_ros (see README.md)."""
