#include "profile/TimeZone.h"

#include <cctype>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fleetprobe
{

/// A POSIX TZ rule (`std offset [dst [offset] [,start[/time],end[/time]]]`), as in a TZif footer.
struct TimeZone::Rule
{
    /// A rule date: Mm.w.d (kind 'M'), Jn (kind 'J', 1–365, no leap day) or n (kind 'n', 0–365).
    struct Date
    {
        char kind = 'M';
        int month = 0, week = 0, day = 0; ///< M form
        int number = 0;                   ///< J and n forms
        int timeSeconds = 7200;           ///< local time of the change (default 02:00)
    };

    int stdOffset = 0; ///< seconds east of UTC
    bool hasDst = false;
    int dstOffset = 0;
    Date start, end;

    int offsetAt(std::int64_t t) const;
};

namespace
{

constexpr std::int64_t day = 86400;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t daysFromCivil(std::int64_t y, int m, int d)
{
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy =
        (153 * static_cast<unsigned>(m + (m > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

/// The year of a day count since 1970-01-01.
std::int64_t yearOfDays(std::int64_t z)
{
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

bool isLeap(std::int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

std::int64_t floorDiv(std::int64_t a, std::int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/// The local time (seconds since 1970-01-01 local) a rule date stands for in year `y`.
std::int64_t localChange(const TimeZone::Rule::Date& d, std::int64_t y)
{
    std::int64_t days = 0;
    if (d.kind == 'J')
        days = daysFromCivil(y, 1, 1) + d.number - 1 + (isLeap(y) && d.number >= 60 ? 1 : 0);
    else if (d.kind == 'n')
        days = daysFromCivil(y, 1, 1) + d.number;
    else
    {
        const std::int64_t first = daysFromCivil(y, d.month, 1);
        const int firstWeekday = static_cast<int>(((first % 7) + 7 + 4) % 7); // 1970-01-01 was a Thursday (4)
        std::int64_t dayOfMonth = 1 + (d.day - firstWeekday + 7) % 7 + 7 * (d.week - 1);
        static const int monthDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        const int inMonth = monthDays[d.month - 1] + (d.month == 2 && isLeap(y) ? 1 : 0);
        while (dayOfMonth > inMonth)
            dayOfMonth -= 7;
        days = first + dayOfMonth - 1;
    }
    return days * day + d.timeSeconds;
}

/// Reads a POSIX TZ rule.
class RuleParser
{
public:
    explicit RuleParser(const std::string& text) : _s(text) {}

    TimeZone::Rule parse()
    {
        TimeZone::Rule r;
        name();
        r.stdOffset = -offset();
        if (atEnd())
            return r;
        name();
        r.hasDst = true;
        r.dstOffset = r.stdOffset + 3600;
        if (!atEnd() && _s[_pos] != ',')
            r.dstOffset = -offset();
        if (atEnd())
        {
            // No rule: the US rules of POSIX's default; TZif footers always carry one.
            r.start = TimeZone::Rule::Date{'M', 3, 2, 0, 0, 7200};
            r.end = TimeZone::Rule::Date{'M', 11, 1, 0, 0, 7200};
            return r;
        }
        expect(',');
        r.start = date();
        expect(',');
        r.end = date();
        if (!atEnd())
            fail("trailing characters");
        return r;
    }

private:
    bool atEnd() const { return _pos >= _s.size(); }

    [[noreturn]] void fail(const std::string& why) const
    {
        throw std::runtime_error("bad TZ rule \"" + _s + "\": " + why);
    }

    void expect(char c)
    {
        if (atEnd() || _s[_pos] != c)
            fail(std::string("expected '") + c + "'");
        ++_pos;
    }

    void name()
    {
        if (!atEnd() && _s[_pos] == '<')
        {
            const std::size_t close = _s.find('>', _pos);
            if (close == std::string::npos)
                fail("unterminated <name>");
            _pos = close + 1;
            return;
        }
        const std::size_t start = _pos;
        while (!atEnd() && std::isalpha(static_cast<unsigned char>(_s[_pos])))
            ++_pos;
        if (_pos - start < 3)
            fail("zone abbreviation too short");
    }

    int number()
    {
        if (atEnd() || !std::isdigit(static_cast<unsigned char>(_s[_pos])))
            fail("a number is missing");
        int n = 0;
        while (!atEnd() && std::isdigit(static_cast<unsigned char>(_s[_pos])) && n < 100000)
            n = n * 10 + (_s[_pos++] - '0');
        return n;
    }

    /// [+-]hh[:mm[:ss]] in seconds.
    int offset()
    {
        int sign = 1;
        if (!atEnd() && (_s[_pos] == '+' || _s[_pos] == '-'))
            sign = _s[_pos++] == '-' ? -1 : 1;
        int seconds = number() * 3600;
        if (!atEnd() && _s[_pos] == ':')
        {
            ++_pos;
            seconds += number() * 60;
            if (!atEnd() && _s[_pos] == ':')
            {
                ++_pos;
                seconds += number();
            }
        }
        if (seconds > 167 * 3600 + 59 * 60 + 59)
            fail("offset out of range");
        return sign * seconds;
    }

    TimeZone::Rule::Date date()
    {
        TimeZone::Rule::Date d;
        if (!atEnd() && _s[_pos] == 'M')
        {
            ++_pos;
            d.kind = 'M';
            d.month = number();
            expect('.');
            d.week = number();
            expect('.');
            d.day = number();
            if (d.month < 1 || d.month > 12 || d.week < 1 || d.week > 5 || d.day > 6)
                fail("bad Mm.w.d date");
        }
        else if (!atEnd() && _s[_pos] == 'J')
        {
            ++_pos;
            d.kind = 'J';
            d.number = number();
            if (d.number < 1 || d.number > 365)
                fail("bad Jn date");
        }
        else
        {
            d.kind = 'n';
            d.number = number();
            if (d.number > 365)
                fail("bad day number");
        }
        if (!atEnd() && _s[_pos] == '/')
        {
            ++_pos;
            d.timeSeconds = offset();
        }
        return d;
    }

    const std::string& _s;
    std::size_t _pos = 0;
};

std::int64_t bigEndian(const std::string& b, std::size_t pos, int bytes)
{
    if (pos + static_cast<std::size_t>(bytes) > b.size())
        throw std::runtime_error("truncated TZif data");
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
        v = (v << 8) | static_cast<unsigned char>(b[pos + static_cast<std::size_t>(i)]);
    if (bytes == 4)
        return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
    return static_cast<std::int64_t>(v);
}

bool validName(const std::string& name)
{
    if (name.empty() || name.size() > 255 || name.front() == '/' || name.find("..") != std::string::npos)
        return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '_' && c != '-' && c != '+')
            return false;
    return true;
}

} // namespace

int TimeZone::Rule::offsetAt(std::int64_t t) const
{
    if (!hasDst)
        return stdOffset;
    const std::int64_t year = yearOfDays(floorDiv(t + stdOffset, day));
    // The changes of the year before, this year and the next: a southern-hemisphere summer spans New Year.
    bool dst = false;
    std::int64_t latest = INT64_MIN;
    for (std::int64_t y = year - 1; y <= year + 1; ++y)
    {
        const std::int64_t on = localChange(start, y) - stdOffset;
        const std::int64_t off = localChange(end, y) - dstOffset;
        if (on <= t && on > latest)
            latest = on, dst = true;
        if (off <= t && off > latest)
            latest = off, dst = false;
    }
    return dst ? dstOffset : stdOffset;
}

std::shared_ptr<const TimeZone> TimeZone::fromRule(const std::string& name, const std::string& rule)
{
    std::shared_ptr<TimeZone> zone(new TimeZone());
    zone->_name = name;
    zone->_rule = std::make_shared<const Rule>(RuleParser(rule).parse());
    return zone;
}

std::shared_ptr<const TimeZone> TimeZone::fromTzif(const std::string& name, const std::string& b)
{
    if (b.size() < 44 || b.compare(0, 4, "TZif") != 0)
        throw std::runtime_error("not a TZif file");
    const auto counts = [&b](std::size_t at)
    {
        std::int64_t c[6];
        for (int i = 0; i < 6; ++i)
            c[i] = bigEndian(b, at + 20 + 4 * static_cast<std::size_t>(i), 4);
        for (auto n : c)
            if (n < 0 || n > 100000)
                throw std::runtime_error("bad TZif counts");
        return std::vector<std::size_t>(c, c + 6); // isutcnt isstdcnt leapcnt timecnt typecnt charcnt
    };
    std::size_t pos = 0;
    auto c = counts(pos);
    int timeBytes = 4;
    if (b[4] >= '2')
    {
        // Skip the 32-bit block: its data size with 4-byte times.
        pos = 44 + c[3] * 4 + c[3] + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
        if (pos + 44 > b.size() || b.compare(pos, 4, "TZif") != 0)
            throw std::runtime_error("bad TZif second header");
        c = counts(pos);
        timeBytes = 8;
    }
    const std::size_t timecnt = c[3], typecnt = c[4];
    if (typecnt == 0)
        throw std::runtime_error("TZif without local time types");
    std::size_t p = pos + 44;
    std::shared_ptr<TimeZone> zone(new TimeZone());
    zone->_name = name;
    std::vector<std::int64_t> times(timecnt);
    for (auto& t : times)
        t = bigEndian(b, p, timeBytes), p += static_cast<std::size_t>(timeBytes);
    std::vector<std::size_t> indices(timecnt);
    for (auto& i : indices)
        i = static_cast<std::size_t>(bigEndian(b, p++, 1) & 0xff);
    std::vector<int> offsets(typecnt);
    for (auto& o : offsets)
    {
        o = static_cast<int>(bigEndian(b, p, 4));
        p += 6;
    }
    for (std::size_t i = 0; i < timecnt; ++i)
    {
        if (indices[i] >= typecnt)
            throw std::runtime_error("bad TZif type index");
        if (i > 0 && times[i] <= times[i - 1])
            throw std::runtime_error("TZif transitions out of order");
    }
    zone->_transitions = std::move(times);
    for (auto i : indices)
        zone->_transitionOffsets.push_back(offsets[i]);
    zone->_initialOffset = offsets[0];
    p += c[5] + c[2] * static_cast<std::size_t>(timeBytes + 4) + c[1] + c[0];
    if (timeBytes == 8 && p < b.size() && b[p] == '\n')
    {
        const std::size_t close = b.find('\n', p + 1);
        if (close == std::string::npos)
            throw std::runtime_error("unterminated TZif footer");
        const std::string footer = b.substr(p + 1, close - p - 1);
        if (!footer.empty())
            zone->_rule = std::make_shared<const Rule>(RuleParser(footer).parse());
    }
    return zone;
}

std::shared_ptr<const TimeZone> TimeZone::load(const std::string& name)
{
    if (name == "UTC" || name == "Etc/UTC")
        return fromRule(name, "UTC0");
    if (!validName(name))
        throw std::runtime_error("not an IANA zone name such as \"Europe/Madrid\"");
    // NOLINTNEXTLINE(concurrency-mt-unsafe): fleetprobe never changes its environment
    const char* dir = std::getenv("TZDIR");
    const std::string path = std::string(dir && *dir ? dir : "/usr/share/zoneinfo") + "/" + name;
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("no " + path + " (is Debian's tzdata installed?)");
    std::ostringstream ss;
    ss << in.rdbuf();
    try
    {
        return fromTzif(name, ss.str());
    }
    catch (const std::runtime_error& e)
    {
        throw std::runtime_error(path + ": " + e.what());
    }
}

int TimeZone::offsetAt(std::int64_t t) const
{
    if (_transitions.empty() || t < _transitions.front())
    {
        if (_transitions.empty() && _rule)
            return _rule->offsetAt(t);
        return _initialOffset;
    }
    if (t >= _transitions.back() && _rule)
        return _rule->offsetAt(t);
    std::size_t lo = 0, hi = _transitions.size();
    while (hi - lo > 1)
    {
        const std::size_t mid = (lo + hi) / 2;
        (_transitions[mid] <= t ? lo : hi) = mid;
    }
    return _transitionOffsets[lo];
}

int TimeZone::hourOfWeek(double unixSeconds) const
{
    const auto t = static_cast<std::int64_t>(std::floor(unixSeconds));
    const std::int64_t local = t + offsetAt(t);
    const std::int64_t days = floorDiv(local, day);
    const std::int64_t weekday = ((days + 3) % 7 + 7) % 7; // Monday 0; 1970-01-01 was a Thursday
    return static_cast<int>(weekday * 24 + (local - days * day) / 3600);
}

std::string TimeZone::localText(double unixSeconds, bool withDay) const
{
    static const char* const names[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    const auto t = static_cast<std::int64_t>(std::floor(unixSeconds));
    const std::int64_t local = t + offsetAt(t);
    const std::int64_t days = floorDiv(local, day);
    const std::int64_t ofDay = local - days * day;
    char text[32];
    std::snprintf(text, sizeof text, "%02d:%02d", static_cast<int>(ofDay / 3600),
                  static_cast<int>(ofDay % 3600 / 60));
    if (!withDay)
        return text;
    return std::string(names[((days + 3) % 7 + 7) % 7]) + " " + text;
}

double TimeZone::hourStart(double unixSeconds) const
{
    const auto t = static_cast<std::int64_t>(std::floor(unixSeconds));
    const std::int64_t local = t + offsetAt(t);
    return static_cast<double>(t - (local - floorDiv(local, 3600) * 3600));
}

} // namespace fleetprobe
