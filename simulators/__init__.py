"""Simulated plant: CNC machines on Modbus TCP, packaging lines on OPC UA, vibration sensors on MQTT.

The pure model lives in :mod:`simulators.plant`; the protocol servers in
:mod:`simulators.modbus_server`, :mod:`simulators.opcua_server` and
:mod:`simulators.mqtt_sensors`; :func:`simulators.runner.plant_running` runs
them all in the current event loop and ``edge-sim`` (:mod:`simulators.cli`)
from the command line. Every device is exposed exactly as its shipped profile
in ``device_profiles/`` describes it.
"""

from simulators.plant import CncMachine, PackagingLine, Plant, StateInterval, VibrationSensor

__all__ = ["CncMachine", "PackagingLine", "Plant", "StateInterval", "VibrationSensor"]
