(module
  (type $t0 (func (param i32 i32 i32 i32)))
  (type $t1 (func (param i32 i32 i32 i32 i32 f32)))
  (type $t2 (func (param i32 i32 i32 i32 i32 i32 i32 i32 f32)))
  (type $t3 (func (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (type $t4 (func (param i32 i32 i32 i32)))
  (type $t5 (func (param i32 i32 i32 i32)))
  (type $t6 (func (param i32 i32 i32 i32)))
  (type $t7 (func (param i32 i32 i32 i32 i32)))
  (import "env" "memory" (memory $env.memory 0))
  (func $gelu (export "gelu") (type $t0) (param $p0 i32) (param $p1 i32) (param $p2 i32) (param $p3 i32)
    (local $l4 v128) (local $l5 v128) (local $l6 v128) (local $l7 v128) (local $l8 v128) (local $l9 v128) (local $l10 v128)
    block $B0
      local.get $p0
      local.get $p3
      i32.ge_u
      br_if $B0
      loop $L1
        local.get $p0
        v128.load align=4
        local.set $l4
        local.get $l4
        v128.const i32x4 0x3f3504f3 0x3f3504f3 0x3f3504f3 0x3f3504f3
        f32x4.mul
        v128.const i32x4 0x40800000 0x40800000 0x40800000 0x40800000
        f32x4.pmin
        v128.const i32x4 0xc0800000 0xc0800000 0xc0800000 0xc0800000
        f32x4.pmax
        local.set $l5
        local.get $l5
        local.get $l5
        f32x4.mul
        local.set $l6
        v128.const i32x4 0x3f000000 0x3f000000 0x3f000000 0x3f000000
        v128.const i32x4 0xaf95df0b 0xaf95df0b 0xaf95df0b 0xaf95df0b
        local.get $l6
        f32x4.mul
        v128.const i32x4 0x32edffee 0x32edffee 0x32edffee 0x32edffee
        f32x4.add
        local.get $l6
        f32x4.mul
        v128.const i32x4 0xb60cff51 0xb60cff51 0xb60cff51 0xb60cff51
        f32x4.add
        local.get $l6
        f32x4.mul
        v128.const i32x4 0xb86ec2d2 0xb86ec2d2 0xb86ec2d2 0xb86ec2d2
        f32x4.add
        local.get $l6
        f32x4.mul
        v128.const i32x4 0xba40ac63 0xba40ac63 0xba40ac63 0xba40ac63
        f32x4.add
        local.get $l6
        f32x4.mul
        v128.const i32x4 0xbb41a1f6 0xbb41a1f6 0xbb41a1f6 0xbb41a1f6
        f32x4.add
        local.get $l6
        f32x4.mul
        v128.const i32x4 0xbc83dbd4 0xbc83dbd4 0xbc83dbd4 0xbc83dbd4
        f32x4.add
        local.get $l5
        f32x4.mul
        v128.const i32x4 0x3f000000 0x3f000000 0x3f000000 0x3f000000
        f32x4.mul
        v128.const i32x4 0xb77460cd 0xb77460cd 0xb77460cd 0xb77460cd
        local.get $l6
        f32x4.mul
        v128.const i32x4 0xb95fbd29 0xb95fbd29 0xb95fbd29 0xb95fbd29
        f32x4.add
        local.get $l6
        f32x4.mul
        v128.const i32x4 0xbadc924e 0xbadc924e 0xbadc924e 0xbadc924e
        f32x4.add
        local.get $l6
        f32x4.mul
        v128.const i32x4 0xbbf19bf8 0xbbf19bf8 0xbbf19bf8 0xbbf19bf8
        f32x4.add
        local.get $l6
        f32x4.mul
        v128.const i32x4 0xbc69b6a7 0xbc69b6a7 0xbc69b6a7 0xbc69b6a7
        f32x4.add
        f32x4.div
        f32x4.add
        local.set $l7
        local.get $p1
        local.get $l4
        local.get $l7
        f32x4.mul
        v128.store align=4
        local.get $l4
        local.get $l4
        f32x4.mul
        v128.const i32x4 0xbf000000 0xbf000000 0xbf000000 0xbf000000
        f32x4.mul
        v128.const i32x4 0xc2ae0000 0xc2ae0000 0xc2ae0000 0xc2ae0000
        f32x4.pmax
        local.set $l8
        local.get $l8
        v128.const i32x4 0x3fb8aa3b 0x3fb8aa3b 0x3fb8aa3b 0x3fb8aa3b
        f32x4.mul
        f32x4.nearest
        local.set $l9
        local.get $l8
        local.get $l9
        v128.const i32x4 0x3f318000 0x3f318000 0x3f318000 0x3f318000
        f32x4.mul
        f32x4.sub
        local.get $l9
        v128.const i32x4 0xb95e8083 0xb95e8083 0xb95e8083 0xb95e8083
        f32x4.mul
        f32x4.sub
        local.set $l10
        local.get $p2
        local.get $l7
        local.get $l4
        v128.const i32x4 0x39506967 0x39506967 0x39506967 0x39506967
        local.get $l10
        f32x4.mul
        v128.const i32x4 0x3ab743ce 0x3ab743ce 0x3ab743ce 0x3ab743ce
        f32x4.add
        local.get $l10
        f32x4.mul
        v128.const i32x4 0x3c088908 0x3c088908 0x3c088908 0x3c088908
        f32x4.add
        local.get $l10
        f32x4.mul
        v128.const i32x4 0x3d2aa9c1 0x3d2aa9c1 0x3d2aa9c1 0x3d2aa9c1
        f32x4.add
        local.get $l10
        f32x4.mul
        v128.const i32x4 0x3e2aaaaa 0x3e2aaaaa 0x3e2aaaaa 0x3e2aaaaa
        f32x4.add
        local.get $l10
        f32x4.mul
        v128.const i32x4 0x3f000000 0x3f000000 0x3f000000 0x3f000000
        f32x4.add
        local.get $l10
        local.get $l10
        f32x4.mul
        f32x4.mul
        local.get $l10
        f32x4.add
        v128.const i32x4 0x3f800000 0x3f800000 0x3f800000 0x3f800000
        f32x4.add
        local.get $l9
        i32x4.trunc_sat_f32x4_s
        v128.const i32x4 0x0000007f 0x0000007f 0x0000007f 0x0000007f
        i32x4.add
        i32.const 23
        i32x4.shl
        f32x4.mul
        v128.const i32x4 0x3ecc422a 0x3ecc422a 0x3ecc422a 0x3ecc422a
        f32x4.mul
        f32x4.mul
        f32x4.add
        v128.store align=4
        local.get $p1
        i32.const 16
        i32.add
        local.set $p1
        local.get $p2
        i32.const 16
        i32.add
        local.set $p2
        local.get $p0
        i32.const 16
        i32.add
        local.tee $p0
        local.get $p3
        i32.lt_u
        br_if $L1
      end
    end)
  (func $dropout (export "dropout") (type $t1) (param $p0 i32) (param $p1 i32) (param $p2 i32) (param $p3 i32) (param $p4 i32) (param $p5 f32)
    (local $l6 v128) (local $l7 v128) (local $l8 v128) (local $l9 v128) (local $l10 v128) (local $l11 v128)
    local.get $p3
    i32x4.splat
    v128.const i32x4 0x00000000 0x9e3779b1 0x3c6ef362 0xdaa66d13
    i32x4.add
    local.set $l6
    local.get $p5
    f32x4.splat
    local.set $l10
    local.get $p4
    i32x4.splat
    local.set $l11
    block $B0
      local.get $p0
      local.get $p2
      i32.ge_u
      br_if $B0
      loop $L1
        local.get $l6
        local.set $l7
        local.get $l7
        local.get $l7
        i32.const 16
        i32x4.shr_u
        v128.xor
        local.set $l7
        local.get $l7
        v128.const i32x4 0x85ebca6b 0x85ebca6b 0x85ebca6b 0x85ebca6b
        i32x4.mul
        local.set $l7
        local.get $l7
        local.get $l7
        i32.const 13
        i32x4.shr_u
        v128.xor
        local.set $l7
        local.get $l7
        v128.const i32x4 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35 0xc2b2ae35
        i32x4.mul
        local.set $l7
        local.get $l7
        local.get $l7
        i32.const 16
        i32x4.shr_u
        v128.xor
        local.set $l7
        local.get $l7
        v128.const i32x4 0x0000ffff 0x0000ffff 0x0000ffff 0x0000ffff
        v128.and
        local.get $l11
        i32x4.ge_s
        local.set $l8
        local.get $l7
        i32.const 16
        i32x4.shr_u
        local.get $l11
        i32x4.ge_s
        local.set $l9
        local.get $p1
        local.get $p0
        v128.load align=4
        local.get $l8
        local.get $l9
        i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
        local.get $l10
        v128.and
        f32x4.mul
        v128.store align=4
        local.get $p1
        local.get $p0
        v128.load offset=16 align=4
        local.get $l8
        local.get $l9
        i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31
        local.get $l10
        v128.and
        f32x4.mul
        v128.store offset=16 align=4
        local.get $l6
        v128.const i32x4 0x78dde6c4 0x78dde6c4 0x78dde6c4 0x78dde6c4
        i32x4.add
        local.set $l6
        local.get $p1
        i32.const 32
        i32.add
        local.set $p1
        local.get $p0
        i32.const 32
        i32.add
        local.tee $p0
        local.get $p2
        i32.lt_u
        br_if $L1
      end
    end)
  (func $layerNorm (export "layerNorm") (type $t2) (param $p0 i32) (param $p1 i32) (param $p2 i32) (param $p3 i32) (param $p4 i32) (param $p5 i32) (param $p6 i32) (param $p7 i32) (param $p8 f32)
    (local $l9 i32) (local $l10 i32) (local $l11 i32) (local $l12 v128) (local $l13 v128) (local $l14 v128) (local $l15 v128) (local $l16 f32) (local $l17 f32)
    local.get $p7
    i32.const 4
    i32.mul
    local.set $l10
    local.get $p0
    local.get $p6
    local.get $l10
    i32.mul
    i32.add
    local.set $l11
    block $B0
      local.get $p0
      local.get $l11
      i32.ge_u
      br_if $B0
      loop $L1
        v128.const i32x4 0x00000000 0x00000000 0x00000000 0x00000000
        local.set $l12
        i32.const 0
        local.set $l9
        block $B2
          local.get $l9
          local.get $l10
          i32.ge_u
          br_if $B2
          loop $L3
            local.get $l12
            local.get $p0
            local.get $l9
            i32.add
            v128.load align=4
            f32x4.add
            local.set $l12
            local.get $l9
            i32.const 16
            i32.add
            local.tee $l9
            local.get $l10
            i32.lt_u
            br_if $L3
          end
        end
        local.get $l12
        f32x4.extract_lane 0
        local.get $l12
        f32x4.extract_lane 1
        f32.add
        local.get $l12
        f32x4.extract_lane 2
        local.get $l12
        f32x4.extract_lane 3
        f32.add
        f32.add
        local.get $p7
        f32.convert_i32_u
        f32.div
        local.tee $l16
        f32x4.splat
        local.set $l13
        v128.const i32x4 0x00000000 0x00000000 0x00000000 0x00000000
        local.set $l12
        i32.const 0
        local.set $l9
        block $B4
          local.get $l9
          local.get $l10
          i32.ge_u
          br_if $B4
          loop $L5
            local.get $p0
            local.get $l9
            i32.add
            v128.load align=4
            local.get $l13
            f32x4.sub
            local.set $l15
            local.get $l12
            local.get $l15
            local.get $l15
            f32x4.mul
            f32x4.add
            local.set $l12
            local.get $l9
            i32.const 16
            i32.add
            local.tee $l9
            local.get $l10
            i32.lt_u
            br_if $L5
          end
        end
        f32.const 0x1p+0 (;=1;)
        local.get $l12
        f32x4.extract_lane 0
        local.get $l12
        f32x4.extract_lane 1
        f32.add
        local.get $l12
        f32x4.extract_lane 2
        local.get $l12
        f32x4.extract_lane 3
        f32.add
        f32.add
        local.get $p7
        f32.convert_i32_u
        f32.div
        local.get $p8
        f32.add
        f32.sqrt
        f32.div
        local.tee $l17
        f32x4.splat
        local.set $l14
        i32.const 0
        local.set $l9
        block $B6
          local.get $l9
          local.get $l10
          i32.ge_u
          br_if $B6
          loop $L7
            local.get $p1
            local.get $l9
            i32.add
            local.get $p0
            local.get $l9
            i32.add
            v128.load align=4
            local.get $l13
            f32x4.sub
            local.get $l14
            f32x4.mul
            local.get $p4
            local.get $l9
            i32.add
            v128.load align=4
            f32x4.mul
            local.get $p5
            local.get $l9
            i32.add
            v128.load align=4
            f32x4.add
            v128.store align=4
            local.get $l9
            i32.const 16
            i32.add
            local.tee $l9
            local.get $l10
            i32.lt_u
            br_if $L7
          end
        end
        local.get $p2
        local.get $l16
        f32.store
        local.get $p3
        local.get $l17
        f32.store
        local.get $p2
        i32.const 4
        i32.add
        local.set $p2
        local.get $p3
        i32.const 4
        i32.add
        local.set $p3
        local.get $p1
        local.get $l10
        i32.add
        local.set $p1
        local.get $p0
        local.get $l10
        i32.add
        local.tee $p0
        local.get $l11
        i32.lt_u
        br_if $L1
      end
    end)
  (func $layerNormGrad (export "layerNormGrad") (type $t3) (param $p0 i32) (param $p1 i32) (param $p2 i32) (param $p3 i32) (param $p4 i32) (param $p5 i32) (param $p6 i32) (param $p7 i32) (param $p8 i32) (param $p9 i32)
    (local $l10 i32) (local $l11 i32) (local $l12 i32) (local $l13 v128) (local $l14 v128) (local $l15 v128) (local $l16 v128) (local $l17 v128) (local $l18 v128) (local $l19 v128) (local $l20 v128) (local $l21 v128)
    local.get $p9
    i32.const 4
    i32.mul
    local.set $l11
    local.get $p1
    local.get $p8
    local.get $l11
    i32.mul
    i32.add
    local.set $l12
    block $B0
      local.get $p1
      local.get $l12
      i32.ge_u
      br_if $B0
      loop $L1
        local.get $p2
        f32.load
        f32x4.splat
        local.set $l15
        local.get $p3
        f32.load
        f32x4.splat
        local.set $l16
        v128.const i32x4 0x00000000 0x00000000 0x00000000 0x00000000
        local.set $l13
        v128.const i32x4 0x00000000 0x00000000 0x00000000 0x00000000
        local.set $l14
        i32.const 0
        local.set $l10
        block $B2
          local.get $l10
          local.get $l11
          i32.ge_u
          br_if $B2
          loop $L3
            local.get $p0
            local.get $l10
            i32.add
            v128.load align=4
            local.set $l19
            local.get $p1
            local.get $l10
            i32.add
            v128.load align=4
            local.get $l15
            f32x4.sub
            local.get $l16
            f32x4.mul
            local.set $l17
            local.get $l19
            local.get $p4
            local.get $l10
            i32.add
            v128.load align=4
            f32x4.mul
            local.set $l18
            local.get $l13
            local.get $l18
            f32x4.add
            local.set $l13
            local.get $l14
            local.get $l18
            local.get $l17
            f32x4.mul
            f32x4.add
            local.set $l14
            local.get $p6
            local.get $l10
            i32.add
            local.get $p6
            local.get $l10
            i32.add
            v128.load align=4
            local.get $l19
            local.get $l17
            f32x4.mul
            f32x4.add
            v128.store align=4
            local.get $p7
            local.get $l10
            i32.add
            local.get $p7
            local.get $l10
            i32.add
            v128.load align=4
            local.get $l19
            f32x4.add
            v128.store align=4
            local.get $l10
            i32.const 16
            i32.add
            local.tee $l10
            local.get $l11
            i32.lt_u
            br_if $L3
          end
        end
        local.get $l13
        f32x4.extract_lane 0
        local.get $l13
        f32x4.extract_lane 1
        f32.add
        local.get $l13
        f32x4.extract_lane 2
        local.get $l13
        f32x4.extract_lane 3
        f32.add
        f32.add
        local.get $p9
        f32.convert_i32_u
        f32.div
        f32x4.splat
        local.set $l20
        local.get $l14
        f32x4.extract_lane 0
        local.get $l14
        f32x4.extract_lane 1
        f32.add
        local.get $l14
        f32x4.extract_lane 2
        local.get $l14
        f32x4.extract_lane 3
        f32.add
        f32.add
        local.get $p9
        f32.convert_i32_u
        f32.div
        f32x4.splat
        local.set $l21
        i32.const 0
        local.set $l10
        block $B4
          local.get $l10
          local.get $l11
          i32.ge_u
          br_if $B4
          loop $L5
            local.get $p5
            local.get $l10
            i32.add
            local.get $p0
            local.get $l10
            i32.add
            v128.load align=4
            local.get $p4
            local.get $l10
            i32.add
            v128.load align=4
            f32x4.mul
            local.get $l20
            f32x4.sub
            local.get $p1
            local.get $l10
            i32.add
            v128.load align=4
            local.get $l15
            f32x4.sub
            local.get $l16
            f32x4.mul
            local.get $l21
            f32x4.mul
            f32x4.sub
            local.get $l16
            f32x4.mul
            v128.store align=4
            local.get $l10
            i32.const 16
            i32.add
            local.tee $l10
            local.get $l11
            i32.lt_u
            br_if $L5
          end
        end
        local.get $p2
        i32.const 4
        i32.add
        local.set $p2
        local.get $p3
        i32.const 4
        i32.add
        local.set $p3
        local.get $p0
        local.get $l11
        i32.add
        local.set $p0
        local.get $p5
        local.get $l11
        i32.add
        local.set $p5
        local.get $p1
        local.get $l11
        i32.add
        local.tee $p1
        local.get $l12
        i32.lt_u
        br_if $L1
      end
    end)
  (func $transpose (export "transpose") (type $t4) (param $p0 i32) (param $p1 i32) (param $p2 i32) (param $p3 i32)
    (local $l4 i32) (local $l5 i32) (local $l6 i32) (local $l7 i32) (local $l8 i32) (local $l9 i32) (local $l10 i32) (local $l11 v128) (local $l12 v128) (local $l13 v128) (local $l14 v128) (local $l15 v128) (local $l16 v128) (local $l17 v128) (local $l18 v128)
    local.get $p3
    i32.const 4
    i32.mul
    local.set $l5
    local.get $l5
    i32.const 4
    i32.mul
    local.set $l6
    local.get $p2
    i32.const 4
    i32.mul
    local.set $l9
    local.get $l9
    i32.const 4
    i32.mul
    local.set $l10
    local.get $p0
    local.get $p2
    local.get $l5
    i32.mul
    i32.add
    local.set $l7
    block $B0
      local.get $p0
      local.get $l7
      i32.ge_u
      br_if $B0
      loop $L1
        i32.const 0
        local.set $l4
        local.get $p1
        local.set $l8
        block $B2
          local.get $l4
          local.get $l5
          i32.ge_u
          br_if $B2
          loop $L3
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 0
            i32.mul
            i32.add
            v128.load align=4
            local.set $l11
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 1
            i32.mul
            i32.add
            v128.load align=4
            local.set $l12
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 2
            i32.mul
            i32.add
            v128.load align=4
            local.set $l13
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 3
            i32.mul
            i32.add
            v128.load align=4
            local.set $l14
            local.get $l11
            local.get $l12
            i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
            local.set $l15
            local.get $l11
            local.get $l12
            i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31
            local.set $l16
            local.get $l13
            local.get $l14
            i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
            local.set $l17
            local.get $l13
            local.get $l14
            i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31
            local.set $l18
            local.get $l8
            local.get $l9
            i32.const 0
            i32.mul
            i32.add
            local.get $l15
            local.get $l17
            i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            v128.store align=4
            local.get $l8
            local.get $l9
            i32.const 1
            i32.mul
            i32.add
            local.get $l15
            local.get $l17
            i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
            v128.store align=4
            local.get $l8
            local.get $l9
            i32.const 2
            i32.mul
            i32.add
            local.get $l16
            local.get $l18
            i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            v128.store align=4
            local.get $l8
            local.get $l9
            i32.const 3
            i32.mul
            i32.add
            local.get $l16
            local.get $l18
            i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
            v128.store align=4
            local.get $l8
            local.get $l10
            i32.add
            local.set $l8
            local.get $l4
            i32.const 16
            i32.add
            local.tee $l4
            local.get $l5
            i32.lt_u
            br_if $L3
          end
        end
        local.get $p1
        i32.const 16
        i32.add
        local.set $p1
        local.get $p0
        local.get $l6
        i32.add
        local.tee $p0
        local.get $l7
        i32.lt_u
        br_if $L1
      end
    end)
  (func $transpose16 (export "transpose16") (type $t5) (param $p0 i32) (param $p1 i32) (param $p2 i32) (param $p3 i32)
    (local $l4 i32) (local $l5 i32) (local $l6 i32) (local $l7 i32) (local $l8 i32) (local $l9 i32) (local $l10 i32) (local $l11 v128) (local $l12 v128) (local $l13 v128) (local $l14 v128) (local $l15 v128) (local $l16 v128) (local $l17 v128) (local $l18 v128)
    local.get $p3
    i32.const 4
    i32.mul
    local.set $l5
    local.get $l5
    i32.const 16
    i32.mul
    local.set $l6
    local.get $p2
    i32.const 4
    i32.mul
    local.set $l9
    local.get $l9
    i32.const 4
    i32.mul
    local.set $l10
    local.get $p0
    local.get $p2
    local.get $l5
    i32.mul
    i32.add
    local.set $l7
    block $B0
      local.get $p0
      local.get $l7
      i32.ge_u
      br_if $B0
      loop $L1
        i32.const 0
        local.set $l4
        local.get $p1
        local.set $l8
        block $B2
          local.get $l4
          local.get $l5
          i32.ge_u
          br_if $B2
          loop $L3
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 0
            i32.mul
            i32.add
            v128.load align=4
            local.set $l11
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 1
            i32.mul
            i32.add
            v128.load align=4
            local.set $l12
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 2
            i32.mul
            i32.add
            v128.load align=4
            local.set $l13
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 3
            i32.mul
            i32.add
            v128.load align=4
            local.set $l14
            local.get $l11
            local.get $l12
            i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
            local.set $l15
            local.get $l11
            local.get $l12
            i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31
            local.set $l16
            local.get $l13
            local.get $l14
            i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
            local.set $l17
            local.get $l13
            local.get $l14
            i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31
            local.set $l18
            local.get $l8
            local.get $l9
            i32.const 0
            i32.mul
            i32.add
            local.get $l15
            local.get $l17
            i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            v128.store align=4
            local.get $l8
            local.get $l9
            i32.const 1
            i32.mul
            i32.add
            local.get $l15
            local.get $l17
            i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
            v128.store align=4
            local.get $l8
            local.get $l9
            i32.const 2
            i32.mul
            i32.add
            local.get $l16
            local.get $l18
            i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            v128.store align=4
            local.get $l8
            local.get $l9
            i32.const 3
            i32.mul
            i32.add
            local.get $l16
            local.get $l18
            i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
            v128.store align=4
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 4
            i32.mul
            i32.add
            v128.load align=4
            local.set $l11
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 5
            i32.mul
            i32.add
            v128.load align=4
            local.set $l12
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 6
            i32.mul
            i32.add
            v128.load align=4
            local.set $l13
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 7
            i32.mul
            i32.add
            v128.load align=4
            local.set $l14
            local.get $l11
            local.get $l12
            i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
            local.set $l15
            local.get $l11
            local.get $l12
            i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31
            local.set $l16
            local.get $l13
            local.get $l14
            i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
            local.set $l17
            local.get $l13
            local.get $l14
            i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31
            local.set $l18
            local.get $l8
            local.get $l9
            i32.const 0
            i32.mul
            i32.add
            local.get $l15
            local.get $l17
            i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            v128.store offset=16 align=4
            local.get $l8
            local.get $l9
            i32.const 1
            i32.mul
            i32.add
            local.get $l15
            local.get $l17
            i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
            v128.store offset=16 align=4
            local.get $l8
            local.get $l9
            i32.const 2
            i32.mul
            i32.add
            local.get $l16
            local.get $l18
            i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            v128.store offset=16 align=4
            local.get $l8
            local.get $l9
            i32.const 3
            i32.mul
            i32.add
            local.get $l16
            local.get $l18
            i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
            v128.store offset=16 align=4
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 8
            i32.mul
            i32.add
            v128.load align=4
            local.set $l11
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 9
            i32.mul
            i32.add
            v128.load align=4
            local.set $l12
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 10
            i32.mul
            i32.add
            v128.load align=4
            local.set $l13
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 11
            i32.mul
            i32.add
            v128.load align=4
            local.set $l14
            local.get $l11
            local.get $l12
            i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
            local.set $l15
            local.get $l11
            local.get $l12
            i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31
            local.set $l16
            local.get $l13
            local.get $l14
            i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
            local.set $l17
            local.get $l13
            local.get $l14
            i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31
            local.set $l18
            local.get $l8
            local.get $l9
            i32.const 0
            i32.mul
            i32.add
            local.get $l15
            local.get $l17
            i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            v128.store offset=32 align=4
            local.get $l8
            local.get $l9
            i32.const 1
            i32.mul
            i32.add
            local.get $l15
            local.get $l17
            i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
            v128.store offset=32 align=4
            local.get $l8
            local.get $l9
            i32.const 2
            i32.mul
            i32.add
            local.get $l16
            local.get $l18
            i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            v128.store offset=32 align=4
            local.get $l8
            local.get $l9
            i32.const 3
            i32.mul
            i32.add
            local.get $l16
            local.get $l18
            i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
            v128.store offset=32 align=4
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 12
            i32.mul
            i32.add
            v128.load align=4
            local.set $l11
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 13
            i32.mul
            i32.add
            v128.load align=4
            local.set $l12
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 14
            i32.mul
            i32.add
            v128.load align=4
            local.set $l13
            local.get $p0
            local.get $l4
            i32.add
            local.get $l5
            i32.const 15
            i32.mul
            i32.add
            v128.load align=4
            local.set $l14
            local.get $l11
            local.get $l12
            i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
            local.set $l15
            local.get $l11
            local.get $l12
            i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31
            local.set $l16
            local.get $l13
            local.get $l14
            i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23
            local.set $l17
            local.get $l13
            local.get $l14
            i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31
            local.set $l18
            local.get $l8
            local.get $l9
            i32.const 0
            i32.mul
            i32.add
            local.get $l15
            local.get $l17
            i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            v128.store offset=48 align=4
            local.get $l8
            local.get $l9
            i32.const 1
            i32.mul
            i32.add
            local.get $l15
            local.get $l17
            i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
            v128.store offset=48 align=4
            local.get $l8
            local.get $l9
            i32.const 2
            i32.mul
            i32.add
            local.get $l16
            local.get $l18
            i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
            v128.store offset=48 align=4
            local.get $l8
            local.get $l9
            i32.const 3
            i32.mul
            i32.add
            local.get $l16
            local.get $l18
            i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31
            v128.store offset=48 align=4
            local.get $l8
            local.get $l10
            i32.add
            local.set $l8
            local.get $l4
            i32.const 16
            i32.add
            local.tee $l4
            local.get $l5
            i32.lt_u
            br_if $L3
          end
        end
        local.get $p1
        i32.const 64
        i32.add
        local.set $p1
        local.get $p0
        local.get $l6
        i32.add
        local.tee $p0
        local.get $l7
        i32.lt_u
        br_if $L1
      end
    end)
  (func $columnSums (export "columnSums") (type $t6) (param $p0 i32) (param $p1 i32) (param $p2 i32) (param $p3 i32)
    (local $l4 i32) (local $l5 i32) (local $l6 i32)
    local.get $p3
    i32.const 4
    i32.mul
    local.set $l5
    local.get $p0
    local.get $p2
    local.get $l5
    i32.mul
    i32.add
    local.set $l6
    block $B0
      local.get $p0
      local.get $l6
      i32.ge_u
      br_if $B0
      loop $L1
        i32.const 0
        local.set $l4
        block $B2
          local.get $l4
          local.get $l5
          i32.ge_u
          br_if $B2
          loop $L3
            local.get $p1
            local.get $l4
            i32.add
            local.get $p1
            local.get $l4
            i32.add
            v128.load align=4
            local.get $p0
            local.get $l4
            i32.add
            v128.load align=4
            f32x4.add
            v128.store align=4
            local.get $l4
            i32.const 16
            i32.add
            local.tee $l4
            local.get $l5
            i32.lt_u
            br_if $L3
          end
        end
        local.get $p0
        local.get $l5
        i32.add
        local.tee $p0
        local.get $l6
        i32.lt_u
        br_if $L1
      end
    end)
  (func $blockTranspose (export "blockTranspose") (type $t7) (param $p0 i32) (param $p1 i32) (param $p2 i32) (param $p3 i32) (param $p4 i32)
    (local $l5 i32) (local $l6 i32) (local $l7 i32) (local $l8 i32) (local $l9 i32) (local $l10 i32)
    local.get $p3
    local.get $p4
    i32.mul
    local.set $l5
    local.get $p2
    local.get $p4
    i32.mul
    local.set $l10
    local.get $p0
    local.get $p2
    local.get $l5
    i32.mul
    i32.add
    local.set $l6
    block $B0
      local.get $p0
      local.get $l6
      i32.ge_u
      br_if $B0
      loop $L1
        local.get $p1
        local.set $l9
        i32.const 0
        local.set $l7
        block $B2
          local.get $l7
          local.get $l5
          i32.ge_u
          br_if $B2
          loop $L3
            i32.const 0
            local.set $l8
            block $B4
              local.get $l8
              local.get $p4
              i32.ge_u
              br_if $B4
              loop $L5
                local.get $l9
                local.get $l8
                i32.add
                local.get $p0
                local.get $l7
                i32.add
                local.get $l8
                i32.add
                v128.load align=4
                v128.store align=4
                local.get $l8
                i32.const 16
                i32.add
                local.tee $l8
                local.get $p4
                i32.lt_u
                br_if $L5
              end
            end
            local.get $l9
            local.get $l10
            i32.add
            local.set $l9
            local.get $l7
            local.get $p4
            i32.add
            local.tee $l7
            local.get $l5
            i32.lt_u
            br_if $L3
          end
        end
        local.get $p1
        local.get $p4
        i32.add
        local.set $p1
        local.get $p0
        local.get $l5
        i32.add
        local.tee $p0
        local.get $l6
        i32.lt_u
        br_if $L1
      end
    end))
