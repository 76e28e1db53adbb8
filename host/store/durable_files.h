// The files and directories of a run: read, created writable and made
// durable, every failure a gac::Error naming the path.
#pragma once

#include <filesystem>
#include <string>

namespace gac::store_detail {

// Makes the entries of `dir` (a file renamed into it) durable.
void fsync_directory(const std::filesystem::path& dir);

// Creates `dir` if needed and checks that the process can write into it.
void make_writable_directory(const std::filesystem::path& dir);

// Makes everything written to the filesystem of `dir` durable, the files
// and their directory entries, in one call (syncfs) however many files a
// commit names, just before the commit that names them.
void sync_filesystem(const std::filesystem::path& dir);

}  // namespace gac::store_detail
