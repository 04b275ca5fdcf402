"""Export a simulated policy for production: a versioned, hashed JSON artifact and LiteLLM configs."""
