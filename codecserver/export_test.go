package codecserver

// Hooks for the external tests.

// JWKSFileReads returns how many times v read its JWKS file.
func JWKSFileReads(v *JWTVerifier) int64 { return v.fileReads.Load() }

// TokenCacheLen returns how many verified tokens v caches.
func TokenCacheLen(v *JWTVerifier) int {
	if v.cache == nil {
		return 0
	}
	return v.cache.len()
}
