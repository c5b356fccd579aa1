#include "app.hpp"

int main(int argc, char** argv)
{
    return fxd::daemon::run(argc, argv);
}
