"""Import every domain's models so both metadata objects are complete."""
from saas.core.db import SharedBase, TenantBase  # noqa: F401
from saas.tenants import models as _tenants  # noqa: F401

shared_metadata = SharedBase.metadata
tenant_metadata = TenantBase.metadata
from saas.clients import models as _clients  # noqa: F401,E402
from saas.analytics import models as _analytics  # noqa: F401,E402
from saas.campaigns import models as _campaigns  # noqa: F401,E402
