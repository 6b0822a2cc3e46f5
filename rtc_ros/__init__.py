"""rtc_ros: Real-Time Chunking (Black, Galliker, Levine 2025) for ROS 2 robots.

Layers (lower layers never import higher ones):
    rtc_ros.core        ROS-free math and bookkeeping (numpy/torch)
    rtc_ros.policies    flow-policy interface, models, spec loader, training
    rtc_ros.benchmarks  simulated-delay suite and timing benchmarks
    rtc_ros.nodes       thin rclpy adapters
"""

__version__ = "0.1.0"
