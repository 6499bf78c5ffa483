#!/usr/bin/env perl
# Distill4J CUDA emulator: each kernel's static shared memory (its __shared__ variables), read from the compiled
# kernels, as a CUDA module knows it before any launch (cuFuncGetAttribute(CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES), and
# the 48 KiB less it that a launch may ask for without opting in).
#   static_shared.pl KERNELS_O KERNELS_INC > static_shared.inc
# KERNELS_O is kernels.o built with -ffunction-sections -fdata-sections, so that each function and each
# __shared__ variable's key (kernel_shim.h's EMU_SHARED: a static of the variable's size and alignment) has a section
# of its own. A kernel's static shared memory is that of every key reachable from its function's section through
# relocations into code (calls, inlined or not, and the keys' addresses each declaration passes to shared_var), laid
# out from the most aligned down and the total rounded up to 16 bytes, as nvcc does: ptxas -v (CUDA 13.0, sm_90,
# 2026-11-24) reported the same bytes for every kernel but kd_tile_*_c1, where nvcc drops the cluster-only `slots`
# that C = 1 never touches (1040 there, 1104 here: the emulator may count a little more than a GPU, not less).
# Prints one `{"kernel", bytes},` line per kernel of KERNELS_INC (EMU_KERNEL(name, bounds) lines); a kernel without
# a function in KERNELS_O fails the build.
use strict;
use warnings;

my ($obj, $inc) = @ARGV;
die "usage: static_shared.pl KERNELS_O KERNELS_INC\n" unless defined $inc;

sub readelf {
    my @args = @_;
    open(my $fh, '-|', 'readelf', @args, $obj) or die "static_shared.pl: cannot run readelf: $!\n";
    my @lines = <$fh>;
    close($fh) or die "static_shared.pl: readelf @args $obj failed\n";
    return @lines;
}

# sections: index -> name, flags, info (a relocation section's target), alignment
my (%secName, %secFlags, %secInfo, %secAlign, @relaSections);
for (readelf('-SW')) {
    next unless /^\s*\[\s*(\d+)\]\s+(.*)$/;
    my ($idx, @f) = ($1, split(' ', $2));
    next if $idx == 0;
    # Name Type Address Off Size ES [Flg] Lk Inf Al
    my $flags = @f == 10 ? $f[6] : '';
    $secName{$idx} = $f[0];
    $secFlags{$idx} = $flags;
    $secInfo{$idx} = $f[-2];
    $secAlign{$idx} = $f[-1];
    push @relaSections, $idx if $f[1] eq 'RELA';
}

# symbols: index -> section index (undefined ones left out); the kernels' functions and the keys
my (%symSec, %funcSec, %keyOf);
for (readelf('-sW')) {
    next unless /^\s*(\d+):\s+[0-9a-f]+\s+(\S+)\s+(\w+)\s+\w+\s+\w+\s+(\w+)\s*(\S*)/;
    my ($num, $size, $type, $ndx, $name) = ($1, $2 =~ /^0x/ ? hex($2) : $2, $3, $4, $5);
    next unless $ndx =~ /^\d+$/;
    $symSec{$num} = $ndx;
    $funcSec{$name} = $ndx if $type eq 'FUNC';
    if ($type eq 'OBJECT' && $name =~ /emu_shared_key_/) {
        $keyOf{$ndx} = [$size, $secAlign{$ndx}];
    }
}

# edges: from a code section to each section its relocations name (code, or a key)
my %edges;
my $rela = -1;
for (readelf('-rW')) {
    if (/^Relocation section '/) {
        $rela++;
        next;
    }
    next unless $rela >= 0 && /^[0-9a-f]+\s+([0-9a-f]+)\s+R_/;
    my $from = $secInfo{$relaSections[$rela]};
    my $sym = hex(substr($1, 0, length($1) - 8) || '0');
    my $to = $symSec{$sym};
    next unless defined $to && defined $from;
    next unless exists $keyOf{$to} || $secFlags{$to} =~ /X/;
    $edges{$from}{$to} = 1;
}
die "static_shared.pl: readelf listed " . ($rela + 1) . " relocation sections of " . scalar(@relaSections) . "\n"
    unless $rela + 1 == @relaSections;

open(my $kin, '<', $inc) or die "static_shared.pl: $inc: $!\n";
while (<$kin>) {
    next unless /^EMU_KERNEL\((\w+),/;
    my $kernel = $1;
    my $start = $funcSec{$kernel};
    die "static_shared.pl: no function $kernel in $obj\n" unless defined $start;
    my (%seen, @todo, @keys);
    @todo = ($start);
    $seen{$start} = 1;
    while (@todo) {
        my $s = pop @todo;
        push @keys, $keyOf{$s} if exists $keyOf{$s};
        for my $t (keys %{$edges{$s} || {}}) {
            push @todo, $t unless $seen{$t}++;
        }
    }
    my $bytes = 0;
    for my $k (sort { $b->[1] <=> $a->[1] || $b->[0] <=> $a->[0] } @keys) {
        my ($size, $align) = @$k;
        $align = 1 if $align < 1;
        $bytes = int(($bytes + $align - 1) / $align) * $align + $size;
    }
    $bytes = int(($bytes + 15) / 16) * 16;
    print "{\"$kernel\", $bytes},\n";
}
