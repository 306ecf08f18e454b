// Replaced by store.cpp.
