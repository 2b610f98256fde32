"""Suite-wide settings: hypothesis must not flake on a loaded 2-core CI machine."""

from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")
