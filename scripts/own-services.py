#!/usr/bin/env python3
"""Throwaway PostgreSQL and RabbitMQ instances, as the fault tests start them (docs/test-services.md).

.venv/bin/python scripts/own-services.py up --rabbit-nodes 3 --rabbit-config 'consumer_timeout = 5000'
.venv/bin/python scripts/own-services.py cleanup
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fixtures.own_services import main

if __name__ == "__main__":
    main()
