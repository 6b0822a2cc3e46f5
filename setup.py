"""ament_python setup for rtc_ros (builds with colcon on ROS 2 machines and with pip-only colcon)."""

from glob import glob

from setuptools import find_packages, setup

package_name = "rtc_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + package_name + "/policies", glob("policies/*.yaml") + glob("policies/*.safetensors")),
    ],
    python_requires=">=3.10",
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="rtc_ros maintainers",
    maintainer_email="rtc_ros@example.com",
    description="Real-Time Chunking (RTC) for action-chunking flow policies on ROS 2 robots",
    license="Apache-2.0",
    entry_points={
        # policy plugins: a spec's `model:` names one of these, or an import path (rtc_ros.policies.plugins)
        "rtc_ros.policies": ["mlp_mixer = rtc_ros.policies.mixer:make_mixer",
                             "bimanual_cnn = rtc_ros.policies.cnn_mixer:make_cnn_mixer"],
        "console_scripts": [
            "chunk_executor = rtc_ros.nodes.chunk_executor:main",
            "policy_inference = rtc_ros.nodes.policy_inference:main",
            "episode_recorder = rtc_ros.nodes.episode_recorder:main",
            "joint_state_merger = rtc_ros.nodes.joint_state_merger:main",
            "bimanual_sim = rtc_ros.sim.node:main",
            "sim_episodes = rtc_ros.experiments.sim_episodes:main",
            "rtc_bringup = rtc_ros.nodes.bringup:main",
            "rtc_sim_demo = rtc_ros.experiments.demo:main",
            "rtc_sim_latency = rtc_ros.experiments.sim_latency:main",
            "rtc_train_sim_policy = rtc_ros.experiments.train_sim_policy:main",
            "rtc_toy_demo = rtc_ros.benchmarks.toy_demo:main",
            "rtc_latency_benchmark = rtc_ros.benchmarks.latency:main",
        ],
    },
)
