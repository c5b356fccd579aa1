#pragma once
/// A fresh folder under the system temp dir (mode 0700), removed with everything in it on destruction.

#include <filesystem>
#include <string_view>

namespace fxd::test {

class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

} // namespace fxd::test
