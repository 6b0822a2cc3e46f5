"""rtc_ros.nodes."""
