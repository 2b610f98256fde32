"""Server-side encryption of object bytes: pages sealed with AES-GCM (`pages`) under data keys
that are themselves sealed, under the master key, a customer's key or a key-store key (`keys`)."""
