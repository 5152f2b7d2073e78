"""Wire protocol: message definitions, the codec, error codes and PUB topics."""
