"""rtc_ros: Real-Time Chunking (Black, Galliker, Levine 2025) for ROS 2 robots.

Layers (imports only run downward; ``test/test_layers.py`` enforces it):
    rtc_ros.core        ROS-free math: masks, prefix, guidance (exact VJP), samplers, BID, ensembling, delay queue
    rtc_ros.policies    the flow-policy interface, built-in models, spec loading, training
    rtc_ros.runtime     ROS-free Algorithm 1: the chunk contract, one chunk generator (GUIDEDINFERENCE),
                        INFERENCELOOP, GETACTION with its one validator, sync/ensemble modes
    rtc_ros.recording   bags, sidecars, the one dataset pipeline
    rtc_ros.nodes       thin rclpy adapters: messages, the parameter schema, timers, diagnostics
    rtc_ros.sim, .experiments, .benchmarks, .report   on top
"""

__version__ = "0.1.0"
