"""Simulation experiments with the bimanual MuJoCo arms: the policy training pipeline
(:mod:`~rtc_ros.experiments.sim_demos`, :mod:`~rtc_ros.experiments.train_sim_policy`), the paper's real-robot latency protocol in
simulation (:mod:`~rtc_ros.experiments.sim_latency`, its tables :mod:`~rtc_ros.experiments.sim_tables` and
the step-limit seams :mod:`~rtc_ros.experiments.switch_seams`) and the README demo
(:mod:`~rtc_ros.experiments.demo`)."""
