"""A DLMS/COSEM meter simulator: the server side, a fleet of meters, and fault injection."""
