// Whole-file reads for the datasets, tokenizers and user text files the harness loads.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace v4b {

// The bytes of a file; UsageError naming `what` and the path when it is missing, a directory or
// unreadable ("tokenizer file '/x' does not exist").
std::string read_file_bytes(const std::filesystem::path& path, std::string_view what);

// True when `data` starts with the gzip magic bytes.
bool is_gzip(std::string_view data);
// Decompresses gzip data (every member); UsageError "LABEL: the gzip stream is truncated" (or corrupt).
std::string gunzip(const std::string& data, const std::string& label);

}  // namespace v4b
