// .npy files: round trips through npy_bytes_f32/i32 and read_npy, hand-made
// headers of other versions and dtypes, and one test per kind of bad input.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "gac/error.h"
#include "tests/test_util.h"
#include "gac/npy.h"

using namespace gac;
namespace fs = std::filesystem;

namespace {

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("gac_npy_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& bytes) {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  fs::path dir_;
};

// A .npy file of format `major`.0 with `header` (padded to 16 bytes) and raw `data`.
std::string handmade(int major, std::string header, const std::string& data) {
  const size_t len_width = major == 1 ? 2 : 4;
  while ((10 - 2 + len_width + header.size() + 1) % 16 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  for (size_t i = 0; i < len_width; ++i) out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace

TEST_F(NpyTest, Float32RoundTrip) {
  const std::vector<float> values = {0.0f, -1.5f, 3.25f, 1e-30f, -7.0f, 123456.789f};
  const std::string bytes = npy_bytes_f32(values.data(), {2, 3});
  const NpyArray a = read_npy(write("a.npy", bytes));
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  ASSERT_EQ(a.data.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(static_cast<float>(a.data[i]), values[i]);
}

TEST_F(NpyTest, HeaderIsVersion1AlignedTo64) {
  const std::vector<float> values(11074, 0.5f);
  const std::string bytes = npy_bytes_f32(values.data(), {11074});
  ASSERT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(bytes.size(), 10 + header_len + values.size() * 4);
  const std::string header = bytes.substr(10, header_len);
  EXPECT_EQ(header.rfind("{'descr': '<f4', 'fortran_order': False, 'shape': (11074,), }", 0), 0u) << header;
  EXPECT_EQ(header.back(), '\n');
}

TEST_F(NpyTest, Int32RoundTrip) {
  const std::vector<int32_t> values = {-2147483647 - 1, -1, 0, 7, 2147483647};
  const NpyArray a = read_npy(write("i.npy", npy_bytes_i32(values.data(), {5})));
  EXPECT_EQ(a.shape, (std::vector<int64_t>{5}));
  EXPECT_EQ(a.data, (std::vector<double>{-2147483648.0, -1, 0, 7, 2147483647.0}));
}

TEST_F(NpyTest, Version2HeaderInt64) {
  const std::vector<int64_t> values = {-5, 0, 1LL << 40};
  const std::string header = "{\"descr\": \"<i8\", \"shape\": (3,), \"fortran_order\": False}";
  const NpyArray a = read_npy(write("v2.npy", handmade(2, header, raw(values))));
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(a.data, (std::vector<double>{-5, 0, 1099511627776.0}));
}

TEST_F(NpyTest, Version3HeaderUint8) {
  const std::vector<uint8_t> values = {0, 1, 200, 255};
  const NpyArray a = read_npy(
      write("v3.npy", handmade(3, "{ 'descr':'|u1' , 'fortran_order' : False , 'shape' : ( 2 , 2 , ) , }", raw(values))));
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a.data, (std::vector<double>{0, 1, 200, 255}));
}

TEST_F(NpyTest, OtherDtypes) {
  auto read = [&](const std::string& descr, const std::string& data, int count) {
    const std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + std::to_string(count) + ",), }";
    return read_npy(write("d.npy", handmade(1, header, data))).data;
  };
  EXPECT_EQ(read("|b1", raw(std::vector<uint8_t>{1, 0, 1}), 3), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(read("|i1", raw(std::vector<int8_t>{-128, 127}), 2), (std::vector<double>{-128, 127}));
  EXPECT_EQ(read("<i2", raw(std::vector<int16_t>{-300, 300}), 2), (std::vector<double>{-300, 300}));
  EXPECT_EQ(read("<u2", raw(std::vector<uint16_t>{65535}), 1), (std::vector<double>{65535}));
  EXPECT_EQ(read("<u4", raw(std::vector<uint32_t>{4000000000u}), 1), (std::vector<double>{4000000000.0}));
  EXPECT_EQ(read("<u8", raw(std::vector<uint64_t>{1ULL << 63}), 1), (std::vector<double>{9223372036854775808.0}));
  EXPECT_EQ(read("<f8", raw(std::vector<double>{0.1, -2.5}), 2), (std::vector<double>{0.1, -2.5}));
}

TEST_F(NpyTest, ScalarAndEmptyShapes) {
  const NpyArray s = read_npy(write("s.npy", handmade(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }",
                                                      raw(std::vector<double>{42.5}))));
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.data, (std::vector<double>{42.5}));

  const NpyArray e = read_npy(write("e.npy", npy_bytes_f32(nullptr, {0, 4})));
  EXPECT_EQ(e.shape, (std::vector<int64_t>{0, 4}));
  EXPECT_TRUE(e.data.empty());
}

TEST_F(NpyTest, BadMagicRefused) {
  const fs::path p = write("bad.npy", "PK\x03\x04 this is a zip file, not an npy file");
  EXPECT_ERROR_MENTIONS(read_npy(p), p.string() + ": not a .npy file");
}

TEST_F(NpyTest, MissingFileRefused) {
  EXPECT_ERROR_MENTIONS(read_npy(dir_ / "absent.npy"), "absent.npy: cannot open");
  EXPECT_ERROR_MENTIONS(read_npy(dir_), dir_.string() + ": cannot read: not a regular file");
}

TEST_F(NpyTest, TruncatedDataRefused) {
  const std::vector<float> values(10, 1.0f);
  std::string bytes = npy_bytes_f32(values.data(), {10});
  bytes.resize(bytes.size() - 6);
  const fs::path p = write("cut.npy", bytes);
  EXPECT_ERROR_MENTIONS(read_npy(p), p.string() + ": truncated: expected 40 bytes, found 34");
}

TEST_F(NpyTest, OnlyTheAnnouncedDataIsRead) {
  // numpy.load ignores bytes after the data; a sparse file can claim 64 GiB and more
  // of them, which must not be read (this test would run out of memory).
  const std::vector<float> values = {1.0f, 2.0f, 3.0f};
  const fs::path p = write("long.npy", npy_bytes_f32(values.data(), {3}));
  fs::resize_file(p, uint64_t{1} << 36);
  const NpyArray a = read_npy(p);
  EXPECT_EQ(a.data, (std::vector<double>{1.0, 2.0, 3.0}));
  // A header announcing more data than the file holds is refused before anything is allocated.
  const fs::path huge = write("huge.npy", handmade(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }", "x"));
  EXPECT_ERROR_MENTIONS(read_npy(huge), huge.string() + ": truncated: expected 8000000000000 bytes, found 1");
}

TEST_F(NpyTest, TruncatedHeaderRefused) {
  const std::vector<float> values(3, 1.0f);
  const fs::path p = write("cut.npy", npy_bytes_f32(values.data(), {3}).substr(0, 30));
  EXPECT_ERROR_MENTIONS(read_npy(p), "truncated .npy header");
}

TEST_F(NpyTest, FortranOrderRefused) {
  const fs::path p = write("f.npy", handmade(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                                             raw(std::vector<float>(4, 0.0f))));
  EXPECT_ERROR_MENTIONS(read_npy(p), "Fortran-ordered");
}

TEST_F(NpyTest, BigEndianRefused) {
  const fs::path p = write("be.npy", handmade(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
                                              raw(std::vector<float>(1, 0.0f))));
  EXPECT_ERROR_MENTIONS(read_npy(p), "big-endian dtype '>f4'");
}

TEST_F(NpyTest, UnsupportedDtypeRefused) {
  const fs::path p = write("c.npy", handmade(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
                                             raw(std::vector<float>(2, 0.0f))));
  EXPECT_ERROR_MENTIONS(read_npy(p), "unsupported dtype '<c8'");
  const fs::path q = write("s.npy", handmade(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }",
                                             raw(std::vector<float>(1, 0.0f))));
  EXPECT_ERROR_MENTIONS(read_npy(q), "malformed .npy header");
}

TEST_F(NpyTest, MalformedHeaderRefused) {
  const fs::path p = write("m.npy", handmade(1, "{'descr': '<f4', 'shape': (1,), }", raw(std::vector<float>(1, 0.0f))));
  EXPECT_ERROR_MENTIONS(read_npy(p), "lacks a valid 'fortran_order'");
  const fs::path q = write("n.npy", handmade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", ""));
  EXPECT_ERROR_MENTIONS(read_npy(q), "malformed .npy header");
}

TEST_F(NpyTest, WriteFileAtomicReplaces) {
  const fs::path p = dir_ / "out.bin";
  write_file_atomic(p, "first");
  write_file_atomic(p, "second");
  std::ifstream in(p);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "second");
  // No temporary files are left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(NpyTest, WriteFileAtomicUnwritableRefused) {
  const fs::path file = write("plain", "a regular file");
  const fs::path p = file / "under" / "x.npy";
  EXPECT_ERROR_MENTIONS(write_file_atomic(p, "data"), "cannot write " + p.string() + ": " + std::strerror(ENOTDIR));
}
