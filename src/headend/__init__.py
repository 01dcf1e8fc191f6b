"""headend: an AMI head-end system for DLMS/COSEM electricity meters."""

from __future__ import annotations

__version__ = "0.1.0"
