"""Who may act: memberships and API tokens (cached, epoch-checked), authentication, API permissions, two-factor sign-in, tenant hosts."""
