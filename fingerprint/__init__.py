"""Robust content fingerprints for images, audio, video and text, their index and matching
(REQUIREMENTS F1–F4).

Imports nothing from ``ledger``: it takes SM3 from ``hashlib`` directly.
"""
