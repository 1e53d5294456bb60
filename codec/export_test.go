package codec

// SealKeysCached is sealKeysCached for the external tests.
var SealKeysCached = (*Codec).sealKeysCached
