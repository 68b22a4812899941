"""IVR deflection: an IVR offers a caller on hold a text conversation instead, with the call's context."""
