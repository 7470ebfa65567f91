"""Operations: service manager integration and metrics."""
