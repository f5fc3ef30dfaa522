"""Operations helpers for the admin api, the dashboard and /metrics: small, one idea each."""
