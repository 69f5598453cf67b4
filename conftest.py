"""Collection of the package's doctests: an integration whose framework is not installed
is not imported (``icrm.integrations.verifiers`` subclasses verifiers' own ``Judge``)."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("verifiers") else ["icrm/integrations/verifiers.py"]
