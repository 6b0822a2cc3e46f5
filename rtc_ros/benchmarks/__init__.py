"""rtc_ros.benchmarks."""
